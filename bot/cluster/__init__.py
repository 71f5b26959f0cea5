"""Several bot workers on one PostgreSQL database (`HRD_BOT_DATABASE_URL`).

Without a URL (SQLCipher, one process) none of this runs: that process does everything.

- `leader`: one worker leads (a session advisory lock on a connection of its own).
- `timed`: every timed job (safety jobs, sweepers) runs on the leader only.
- `leader_only`: Matrix runs on the leader only; its E2E device lives on the leader's disk.
  Every worker publishes its own device at start (`bot.transports.matrix.enrol`), so
  people's clients share room keys with it before it leads: a take-over reads at once.
- `matrix_position`: the Matrix account's sync position and handled event ids, one for
  all workers, so leadership can move without an event answered twice or skipped.
- `inbox`, `consumer`: Telegram webhook updates wait in the shared inbox for the worker
  that leases their chat, which handles them one at a time, in order, at least once.
- `handover`: queued outbox rows a worker cannot send (Matrix on a follower, a dead
  worker's) are adopted by the leader.
- `relay`, `relay_rows`: a follower's sensitive content for the leader, sealed to the key
  of the leader's term, and the outcome of every row it handed over.
- `worker`: what `hrd-bot run` wraps around the App when a URL is set.

What lives where, and why each is safe with several workers:

- Turns (`bot.conversation.turns`, per process): one chat is served by one worker at a
  time (its lease, which lasts while the person is around and their worker is alive),
  so a process's turns order everything that chat does.
- Buttons (the current screen per chat): every screen shown is also written to the
  database (`bot.transports.telegram.shared_buttons`, choice ids sealed), and read back
  before a press is resolved, so a screen one worker sent (the leader's check-in
  question, the chat's previous worker) can be pressed at another.
- Flood buckets (per process): every message of a chat is handled by its lease holder,
  so its bucket sees them all; forgotten on take-over (a fresh, full bucket).
- Sessions: saved in the database on every answer and, with several workers, read from
  it on every message (no cache: the leader's check-in questions change sessions that
  another worker serves); dropped on take-over all the same.
- Drafts: in the session's state and `sessions.report_case`, in the database.
- The outbox: every message is a row before it is sent; its worker sends it and marks
  it alive; the leader adopts rows nobody marks (`handover`), and Matrix rows at once,
  with their sensitive content sealed to its term's in-memory key, and the follower's
  parcel resolves with the outcome the leader writes (`relay`).
- Seen updates: a webhook retry is dropped in the same transaction that stores an
  update, whichever worker it reaches.
- Matrix's sync position and handled event ids: in the database (`matrix_position`), not
  in the leader's device store: a worker that leads again goes on from where the last
  leader stopped, and drops the events any worker handled. Its device's keys, sessions
  and to-device messages stay on its own disk (fetched first at every election).
- The chat trail's pending notes and the Telegram outbox's per-chat screen lifetimes
  stay per process, as with one process: a worker that dies loses only its unflushed
  notes, as a stopped bot does.
"""

__all__: list[str] = []
