"""Demo data: `python -m services.demo seed` builds a demo province through the services' real
HTTP APIs (never their databases), so every figure on the dashboard comes from real events."""
