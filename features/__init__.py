"""Offline feature building: raw user–video events → a user–video confidence table."""
