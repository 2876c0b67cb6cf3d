"""`inspector top`'s parts: a look at a running program recorded as it goes (`session`), and
the frame of what each process and thread is doing now (`frame`)."""
