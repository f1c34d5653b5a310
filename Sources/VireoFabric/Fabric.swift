import VireoSys
