-- Workers advertise the workflows (and versions) they have the code for, so that
-- `durable status`, `doctor` and the dashboard can name runs no live worker knows.
ALTER TABLE workers ADD COLUMN workflows TEXT;
