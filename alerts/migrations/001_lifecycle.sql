-- Alert lifecycle, escalation state, notification outbox, acknowledgements, alert events.
-- Times are seconds since the epoch by the engine's clock (injectable), except lease columns,
-- which are wall-clock seconds (they answer "is the worker that claimed this still alive?").

create table alerts (
    alert_id      text primary key,           -- id of the first alert record of the episode
    resident_id   text not null,
    device_id     text not null,
    kind          text not null,
    severity      text not null,
    state         text not null check (state in
                    ('open', 'notifying', 'acknowledged', 'resolved', 'cancelled')),
    policy        text not null,
    round         int not null default 0,     -- bumped by a severity rise: a fresh chain
    step          int not null default 0,     -- index of the next step to run
    repeat        int not null default 0,     -- pass through the chain
    next_due_at   double precision,           -- when the next step runs; null: nothing due
    opened_at     double precision not null,
    event_ts      double precision not null,
    detected_at   double precision not null,
    details       jsonb not null default '{}'::jsonb,
    acked_at      double precision,
    acked_by      text,
    acked_channel text,
    closed_at     double precision,
    closed_by     text,
    close_note    text,
    updated_at    double precision not null
);
-- One open episode per resident and kind: duplicates merge into it.
create unique index alerts_open_episode on alerts (resident_id, kind)
    where state in ('open', 'notifying', 'acknowledged');
create index alerts_due on alerts (next_due_at) where state in ('open', 'notifying');

-- Every alert record id seen, so a redelivered record changes nothing.
create table alert_sources (
    source_alert_id text primary key,
    alert_id        text not null references alerts,
    severity        text not null,
    received_at     double precision not null
);

-- The outbox: a row per (alert, round, step, repeat, contact, channel, purpose), written before
-- any request and claimed with FOR UPDATE SKIP LOCKED, so nobody is called twice for one step.
create table notifications (
    id              bigserial primary key,
    alert_id        text not null references alerts,
    round           int not null,
    step            int not null,
    repeat          int not null,
    contact_id      text not null,
    role            text not null,
    channel         text not null check (channel in ('voice', 'sms', 'device')),
    purpose         text not null check (purpose in ('alert', 'ack_notice', 'closed_notice')),
    state           text not null default 'pending' check (state in
                      ('pending', 'sending', 'sent', 'failed', 'skipped', 'unknown')),
    attempts        int not null default 0,
    next_attempt_at double precision not null,
    lease_until     double precision,
    claimed_by      text,
    created_at      double precision not null,
    sent_at         double precision,
    provider_sid    text,
    http_status     int,
    error           text,
    outcome         text,
    outcome_at      double precision,
    unique (alert_id, round, step, repeat, contact_id, channel, purpose)
);
create index notifications_due on notifications (next_attempt_at)
    where state in ('pending', 'sending');
create index notifications_contact on notifications (contact_id, sent_at);

create table acknowledgements (
    id            bigserial primary key,
    alert_id      text not null references alerts,
    action        text not null check (action in ('acknowledge', 'resolve')),
    by_role       text not null,
    by_contact_id text not null,
    channel       text not null,
    note          text,
    at            double precision not null,
    first         boolean not null
);

-- Every change, published to the alert-events topic by whichever worker claims it.
create table alert_events (
    event_id     bigserial primary key,
    alert_id     text not null references alerts,
    event        text not null,
    state        text not null,
    at           double precision not null,
    by           text,
    channel      text,
    note         text,
    published_at double precision,
    lease_until  double precision
);
create index alert_events_unpublished on alert_events (event_id) where published_at is null;
