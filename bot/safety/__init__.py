"""Timed safety work: SOS, escalation ladders, check-ins with duress, retention, and the one
scheduler that runs them. Tables: `checkin_rows` writes checkins, `escalation`
escalation_steps.

May import `cases`, `conversation`, `storage`, `delivery`, `content` and the model."""
