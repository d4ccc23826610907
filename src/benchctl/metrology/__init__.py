"""Metrology: pure functions, numbers in and numbers out, no I/O.

Each module implements one reference document, as summarised in METROLOGY.md:

- ``r76``            OIML R76-1:2006 balance classes (Table 3) and MPE (Table 6)
- ``r111``           OIML R111-1:2004 weight MPE (Table 1)
- ``gum``            JCGM 100:2008 (GUM) budgets through GTC, coverage factor, rounding
- ``balance_budget`` the error-of-indication budget adopted in METROLOGY.md §1.5
- ``decision``       ILAC G8:09/2019 decision rules
- ``units``          one pint registry per process and ``convert()``

Nothing is re-exported here so that importing one light module (``r76``, ``r111``,
``decision``) does not pull in GTC/scipy or pint: the command line lazy-loads.
"""
