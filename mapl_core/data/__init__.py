"""Reading and normalising original preference data."""
