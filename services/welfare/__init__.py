"""Welfare (chăm lo, phúc lợi): programmes and budgets, support cases, micro-loans."""
