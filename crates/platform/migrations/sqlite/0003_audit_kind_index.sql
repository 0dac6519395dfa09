-- Audit filters select by kind (exact or prefix).
CREATE INDEX audit_log_kind ON audit_log(kind);
