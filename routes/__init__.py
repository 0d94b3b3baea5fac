"""The chronology engine: pure stages over the canonical tables (clean, stops, trips, places)."""
