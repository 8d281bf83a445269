"""Tests that tau-ops behaves as the seed (njfio/rsBot) where SPEC says it follows the seed."""
