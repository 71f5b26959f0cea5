"""Transports: each turns one platform's updates into the neutral model and back."""
