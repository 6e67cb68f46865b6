"""GPKI/EPKI helpdesk: the domain core. No telegram import anywhere in this package."""
