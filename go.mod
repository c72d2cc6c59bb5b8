module github.com/fieldvault/fieldvault

go 1.26.8
