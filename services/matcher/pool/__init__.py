"""The matcher's pool per region: tables, applying pool events, building the round's problem."""
