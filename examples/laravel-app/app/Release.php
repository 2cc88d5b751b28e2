<?php

namespace App;

class Release
{
    /** The release this code belongs to (each release has its own folder, and its RELEASE file). */
    public static function id(): string
    {
        $file = base_path('RELEASE');

        return is_file($file) ? trim(file_get_contents($file)) : 'unknown';
    }
}
