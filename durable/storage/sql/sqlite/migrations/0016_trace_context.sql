-- The trace context of the caller (W3C traceparent/tracestate as a JSON carrier) stored with a
-- run so that its spans continue the trace of the code that started it.
ALTER TABLE executions ADD COLUMN trace_context TEXT;
