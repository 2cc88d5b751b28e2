<!doctype html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Fikaso {{ $panel }} panel</title>
    <link rel="stylesheet" href="/app.css">
    @if (file_exists(public_path('build/panel.css')))
    <link rel="stylesheet" href="/build/panel.css">
    @endif
</head>
<body>
    <h1>Fikaso {{ $panel }} panel</h1>
    <dl>
        <dt>Panel</dt><dd id="panel">{{ $panel }}</dd>
        <dt>Release</dt><dd id="release">{{ $release }}</dd>
        <dt>Database</dt><dd id="database">{{ $database }}</dd>
        <dt>First note</dt><dd id="note">{{ $note ?? 'no note yet' }}</dd>
    </dl>
</body>
</html>
