"""The pure core: calendar, durations, clocks, charter evaluation, action planning.

Nothing here does I/O, reads the clock or imports an adapter; instants are UTC epoch
seconds (``int``) passed in by the caller.
"""
