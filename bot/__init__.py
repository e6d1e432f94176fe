"""mailcheck bot package."""
