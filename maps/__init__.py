"""Court map exhibits: offline timeline maps, static PNG/PDF, exports."""
