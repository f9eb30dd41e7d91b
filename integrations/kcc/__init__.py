"""KCC console (live chat with an employee, call-back requests) and the staff login routes."""
