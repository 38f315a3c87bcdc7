-- The content hash of the entry an entry was translated from, when its quality was decided: a
-- translation inherits its parent's image rejection, so a changed parent makes it pending again.
ALTER TABLE quality_results ADD COLUMN parent_hash VARCHAR;
