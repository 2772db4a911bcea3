"""Control-room console: a static page served at /console (no build step)."""
