"""Timed safety work: SOS, escalation ladders, check-ins with duress, retention, and the one
scheduler that runs them.

May import `cases`, `storage`, `delivery`, `content` and the model."""
