-- The console's suspected-falls list reads open suspicions and those closed lately, and its event
-- hub watches the latest change: both by updated_at.
create index fall_suspicions_updated on fall_suspicions (updated_at);
