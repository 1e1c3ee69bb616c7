"""Phase-gradient heap integration (PGHI): phase from the magnitude alone, then Griffin-Lim."""
