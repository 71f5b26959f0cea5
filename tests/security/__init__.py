"""Security tests: what an attacker, a seized server or a hostile input can get."""
