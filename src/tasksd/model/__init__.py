"""The version-neutral domain model shared by every layer; imports nothing from tasksd."""
