"""The notifier's business rules as pure functions: offers, expiry, signing, retries, endpoint URLs."""
