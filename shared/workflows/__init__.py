"""What the worker does with each kind of message: activate, answer operations, track, reconcile.

Each workflow re-reads the truth from the Fulfillment API before it changes anything (R22, R38), so a
duplicated, reordered or forged message can at worst cause one extra read.
"""
