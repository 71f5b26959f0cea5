"""Several bot workers on one PostgreSQL database (`HRD_BOT_DATABASE_URL`).

- `leader`: one worker leads (a session advisory lock); `timed`: only its timer's jobs run.
- `worker`: what `hrd-bot run` wraps around the App when a database URL is set.
"""

__all__: list[str] = []
