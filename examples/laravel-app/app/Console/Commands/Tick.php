<?php

namespace App\Console\Commands;

use App\Release;
use Illuminate\Console\Command;
use Illuminate\Support\Facades\DB;

class Tick extends Command
{
    protected $signature = 'panel:tick';

    protected $description = 'Record that the scheduler ran this minute, and in which release';

    public function handle()
    {
        DB::table('panel_runs')->insert([
            'kind' => 'tick',
            'label' => now()->format('Y-m-d H:i'),
            'release' => Release::id(),
            'started_at' => now(),
            'finished_at' => now(),
        ]);

        return 0;
    }
}
