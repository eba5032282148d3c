"""The malformed-input corpus: every bad file, row or response smartseg can meet, and the message
a person gets for it."""
