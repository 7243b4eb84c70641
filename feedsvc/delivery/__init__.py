"""Getting messages out: the backend protocol and outbox, SMTP, the MIME wire format, claims,
pacing, workers."""
