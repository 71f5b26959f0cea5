"""Sealed cases: the case store and its rows, drafts, casework (reporter and staff sides), the
case thread, attachments, claims and staff members' languages.

May import `storage`, `crypto`, `delivery`, `content`, `conversation` and the model."""
