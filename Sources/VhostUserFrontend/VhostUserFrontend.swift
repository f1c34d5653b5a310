import VhostUser
