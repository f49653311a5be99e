-- Twilio webhook replay guard, per-recipient SMS reply codes, re-calls after a new press, and
-- fall suspicions (prompts to the wearer, shown on the console apart from alerts).

-- Each Twilio request (its CallSid or MessageSid, per route) acts once: a replayed, validly
-- signed request is answered and changes nothing. Written in the transaction of its action.
create table webhook_requests (
    route text not null,              -- 'gather', 'status', 'sms'
    sid   text not null,
    at    double precision not null,
    primary key (route, sid)
);

-- An SMS reply names its alert: "1a" acknowledges, "2a" resolves the alert whose code for this
-- recipient is "a". A code is reused only when its alert is closed, least recently assigned first.
create table sms_codes (
    contact_id  text not null,
    code        text not null,
    alert_id    text not null references alerts,
    assigned_at double precision not null,
    primary key (contact_id, code)
);
create unique index sms_codes_alert on sms_codes (contact_id, alert_id);

-- A new press (SOS, fall) on an acknowledged alert opens a new round that calls whoever
-- acknowledged it ("role:contact-id") together with the chain's first step.
alter table alerts add column recall_by text;

-- Fall suspicions (Kafka fall-suspicions): the wearer is prompted, nobody is notified.
create table fall_suspicions (
    suspicion_id text primary key,
    resident_id  text not null,
    device_id    text not null,
    ts           double precision not null,
    detected_at  double precision not null,
    outcome      text not null check (outcome in ('open', 'confirmed', 'cancelled')),
    reason       text not null default '',
    details      jsonb not null default '{}'::jsonb,
    received_at  double precision not null,
    updated_at   double precision not null
);
create index fall_suspicions_open on fall_suspicions (detected_at) where outcome = 'open';
