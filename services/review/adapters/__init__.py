"""The review service's adapters: tables and the repository (PostgreSQL schema `review`)."""
