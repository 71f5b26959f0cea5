"""Sealed cases: the case store and its rows, drafts, casework (reporter and staff sides), the
case thread, attachments, claims, staff members' languages, and the views and wording port
(`views`, `words`) the handlers see. Tables: `rows` writes cases, case_* and audit;
`staff_rows` staff and org_keys; `staff_languages` staff_languages.

May import `storage`, `crypto`, `delivery`, `content`, `conversation`, the model, and from
`safety` only `sos` (an SOS is a case) and `checkin_rows` (closing a case unlinks check-ins)."""
