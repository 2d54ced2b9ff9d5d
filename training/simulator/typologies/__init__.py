"""Fraud typologies, one module each: mule rings, account takeover, shell businesses, scam
victims (each with a quiet variant)."""
