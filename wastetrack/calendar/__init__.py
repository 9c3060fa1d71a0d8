"""The official working-day calendar (工作日历): weekends, public holidays and make-up days."""
