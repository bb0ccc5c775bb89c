-- Alarm engine (issue 4): every alarm event records who did it, the alarm's state after it,
-- its escalation level and whether it sounds. Kinds: raise, escalate, acknowledge, latch,
-- resolve, pause, pause-end, settings (the old "clear" rows read as resolve).
ALTER TABLE alarm_events ADD COLUMN user_name TEXT;
ALTER TABLE alarm_events ADD COLUMN state TEXT NOT NULL DEFAULT '';
ALTER TABLE alarm_events ADD COLUMN level INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alarm_events ADD COLUMN audible INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alarm_events_alarm_time ON alarm_events (alarm_id, t_ms);
