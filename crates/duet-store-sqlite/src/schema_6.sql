-- Version 6: recalls by the sender, and read receipts.
-- Who recalled a message (its sender's UserID, or the admin's who called the REST API); NULL while not
-- recalled, and for messages recalled before this version (their sender then).
ALTER TABLE messages ADD COLUMN revoker TEXT;
-- When the recipient acknowledged a message sent with `need_read_receipt` (flag 16), in unix seconds.
ALTER TABLE messages ADD COLUMN receipt_time INTEGER;
