-- Adds the `connection-server` role (tether-cxserver links), as
-- migrations/sqlite/0002 does; PostgreSQL changes the CHECK in place.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('administrator', 'operator', 'viewer', 'connection-server'));
