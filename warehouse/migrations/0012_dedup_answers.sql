-- An open question's answer is signed apart (MinHash, 32 permutations; zeros for other tasks):
-- near links between open questions need similar answers. Signatures of the old version are
-- recomputed (the signature version is part of their settings hash).
ALTER TABLE dedup_signatures ADD COLUMN answer_signature UINTEGER[];
