"""Passwords, tokens, sign-in limits and the credentials lookup of devices."""
