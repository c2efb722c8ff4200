module github.com/stratus-cloud/stratus

go 1.26
