"""Test helpers shared by several test modules (environments, sessions, independent readers)."""
