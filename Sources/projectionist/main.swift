import ProjectionistApp

await ProjectionistCommand.runAsRoot()
