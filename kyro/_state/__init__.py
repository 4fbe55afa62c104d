"""A job's state: the structs the state files hold, the store (atomic writes, lock,
write-ahead), the cross-check of a state read back, and the progress it reports.
"""
