"""Timed safety work: SOS, escalation ladders, check-ins with duress, retention, and their
jobs on the bot's one scheduler (`bot.scheduler`). Tables: `checkin_rows` writes checkins,
`escalation` escalation_steps.

May import `cases`, `conversation`, `storage`, `delivery`, `content`, the scheduler and the
model."""
