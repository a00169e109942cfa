"""The review service's pure rules: decisions, reason codes, audit chain, plain-language explanation."""
